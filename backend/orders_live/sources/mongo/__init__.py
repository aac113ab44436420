"""sources/mongo"""
