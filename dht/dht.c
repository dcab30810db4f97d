typedef int pst_placeholder_dht;
