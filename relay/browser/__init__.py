"""The browser: a CDP client, Chromium launch and the managed-browser pool, and the page probe
(CAPTCHA widgets, ``completeWhen``). The first stage of the pipeline; imports no other stage."""
