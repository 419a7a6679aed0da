/* SPDX-License-Identifier: MIT */
/* config_test.c - being written. */
int main(void)
{
	return 0;
}
