//! Tokens of the pies-style syntax.
