"""Projects: a folder of images annotated end to end (store, formats, navigation, prefetch).

``model`` holds the values every part shares; ``store`` keeps them on disk (a human-readable
project file and one SQLite database); ``formats`` writes and reads the files trainers use.
"""
