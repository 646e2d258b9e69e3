"""The task journal: every job, and the rules that let several server processes share it."""
