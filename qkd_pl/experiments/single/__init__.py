"""One run: train a teacher or a student into its run folder, evaluate it, and the folder's files."""
