/* placeholder until implemented */
typedef int pst_placeholder_base32;
