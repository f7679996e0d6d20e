"""samtune.models"""
