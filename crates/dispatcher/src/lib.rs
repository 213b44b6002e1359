//! lookout-dispatcher (being built)
