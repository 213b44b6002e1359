//! Alert pages (placeholder).
