#include <gnu/libc-version.h>
#include <stdio.h>

/* Prints what it was built with: differs from one Debian release to the next. */
int main (void) {
  printf("compiled by gcc %s\n", __VERSION__);
  printf("running on glibc %s\n", gnu_get_libc_version());
  return 0;
}
