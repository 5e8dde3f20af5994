#include <stdio.h>

int main(void) {
    printf("hello from a reproducible build\n");
    return 0;
}
