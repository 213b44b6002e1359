//! lookout-web (being built)
