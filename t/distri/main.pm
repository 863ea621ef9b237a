# A tiny os-autoinst test distribution for t/60-isotovideo.t: the busybox guest of tools/build-guest.
use v5.36;
use testapi;
use autotest;

autotest::loadtest('tests/shell.pm');

1;
