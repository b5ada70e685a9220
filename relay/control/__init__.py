"""Control: the viewer's data-channel protocol, input sent to the page with CDP ``Input.*``,
and the browser interface (address, history, tabs) of ``showBrowserInterface``."""
