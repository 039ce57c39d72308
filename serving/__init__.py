"""Model server and gateway for the reference recommender."""
