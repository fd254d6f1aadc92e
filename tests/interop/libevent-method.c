/* Prints the backend libevent picks (event_base_get_method): the interop
 * script holds libevent to kqueue by environment and checks that it is. */
#include <event2/event.h>
#include <stdio.h>

int main(void)
{
	struct event_base *base = event_base_new();
	if (!base) {
		fputs("event_base_new failed\n", stderr);
		return 1;
	}
	puts(event_base_get_method(base));
	event_base_free(base);
	return 0;
}
