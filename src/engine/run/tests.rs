//! The run's property test: see the bottom of this file.
