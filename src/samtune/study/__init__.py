"""samtune.study"""
