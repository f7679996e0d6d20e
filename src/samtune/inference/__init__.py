"""samtune.inference"""
