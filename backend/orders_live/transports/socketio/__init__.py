"""transports/socketio"""
