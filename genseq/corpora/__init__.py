"""Sources: what a user names (a file, a folder, a glob, a built-in corpus) turned into documents, and
augmented copies of them."""
