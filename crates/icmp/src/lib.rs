//! lookout-icmp (being built)
