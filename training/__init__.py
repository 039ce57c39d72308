"""Data, training, evaluation and bundling of the reference recommender."""
