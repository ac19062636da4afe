//! Rule files and their evaluation.
