"""transports/http"""
