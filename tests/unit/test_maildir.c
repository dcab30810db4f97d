#include <criterion/criterion.h>
/* placeholder: replaced by the module's real tests */
Test(maildir, placeholder) { cr_assert(1); }
