//! Configuration: UCI parser, schema table, typed model, validation (issue 2).
