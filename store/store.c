typedef int pst_placeholder_store;
