"""samtune.evaluation"""
