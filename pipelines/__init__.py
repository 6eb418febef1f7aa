"""Offline feature stage runners: the local multiprocessing pipeline (`extract_features`)."""
