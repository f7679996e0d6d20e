"""samtune.methods"""
