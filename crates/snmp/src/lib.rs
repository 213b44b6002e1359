//! lookout-snmp (being built)
