"""samtune.engine"""
