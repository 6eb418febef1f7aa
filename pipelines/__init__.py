"""Offline feature stage runners: the local multiprocessing pipeline (`extraction`, the library;
`extract_features`, its command) and Apache Beam (`beam_extract`)."""
