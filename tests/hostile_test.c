/* SPDX-License-Identifier: MIT */
/* hostile_test.c - being written. */
int main(void)
{
	return 0;
}
