//! The configuration directory: reading it, and preparing what a loaded configuration
//! needs at run time.

pub mod dir;
pub mod pki_needs;
pub mod prepared;
