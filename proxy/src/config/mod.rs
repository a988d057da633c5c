//! The configuration directory: reading it, and preparing what a loaded configuration
//! needs at run time.

pub mod dir;
pub mod inspection_plan;
pub mod pki_needs;
pub mod prepared;
