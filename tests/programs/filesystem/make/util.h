/* The one function of util.c. */
int twice(int x);
