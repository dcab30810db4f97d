#include <criterion/criterion.h>
/* placeholder: replaced by the module's real tests */
Test(mailmsg, placeholder) { cr_assert(1); }
