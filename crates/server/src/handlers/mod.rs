//! The handlers, one module per group of routes. Each keyed one takes the caller through the
//! [`Auth`] extractor (a handler cannot run unauthenticated; the console's files and the public
//! calculator take none), asks the engine, and turns the answer into
//! HTTP; the list of routes is `routes.rs`.
//!
//! [`Auth`]: crate::api::Auth

pub mod alerts;
pub mod audit;
pub mod charges;
pub mod check;
pub mod console;
pub mod estimate;
pub mod events;
pub mod reconcile;
pub mod tenants;
pub mod usage;
pub mod webhook;
