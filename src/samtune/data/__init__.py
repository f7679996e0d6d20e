"""samtune.data"""
