//! File specs shared by copy, slurp and replicate: checksums, modes, diffs (pure).
