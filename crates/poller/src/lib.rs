//! lookout-poller (being built)
