#include <stdio.h>
int main(void) { puts("forewarn"); return 0; }
