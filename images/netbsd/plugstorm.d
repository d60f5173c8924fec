/*
 * plugstorm.d: detach phases and reference drains on a NetBSD guest, for
 * plugstorm-agent's NetBSD backend (images/agent/netbsd/). The agent runs
 *     dtrace -q -Z -s /usr/libdata/plugstorm/plugstorm.d
 * (-Z: the usbdi SDT probes may be missing, e.g. without the sdt module) and
 * parses every output line with ps_nb_parse_dline (netbsd/nb_events.c):
 *     PS <timestamp ns> <tid> <event> <arg1> <arg2>
 * single spaces, "-" for an empty argument. Return probes print "-" for the
 * name: the agent pairs them with the entry on the same thread.
 * Needs kernel CTF (MKCTF, default on amd64) for the member accesses.
 * Facts: netbsd.md sections 1, 3, 4, 7.
 */
#pragma D option quiet
#pragma D option switchrate=100hz
#pragma D option bufsize=4m
#pragma D option dynvarsize=4m

dtrace:::BEGIN
{
	printf("PSREADY\n");
}

fbt::config_detach:entry
{
	printf("PS %d %d detach-entry %s %d\n", timestamp, tid,
	    stringof(((struct device *)arg0)->dv_xname), (int)arg1);
}

fbt::config_detach:return
{
	printf("PS %d %d detach-return - %d\n", timestamp, tid, (int)arg1);
}

fbt::config_deactivate:entry
{
	printf("PS %d %d deactivate-entry %s -\n", timestamp, tid,
	    stringof(((struct device *)arg0)->dv_xname));
}

fbt::config_deactivate:return
{
	printf("PS %d %d deactivate-return - %d\n", timestamp, tid, (int)arg1);
}

fbt::usb_disconnect_port:entry
{
	printf("PS %d %d port-entry %d -\n", timestamp, tid,
	    ((struct usbd_port *)arg0)->up_portno);
}

fbt::usb_disconnect_port:return
{
	printf("PS %d %d port-return - %d\n", timestamp, tid, (int)arg1);
}

fbt::usbnet_detach:entry
{
	printf("PS %d %d usbnet-entry %s -\n", timestamp, tid,
	    stringof(((struct device *)arg0)->dv_xname));
}

fbt::usbnet_detach:return
{
	printf("PS %d %d usbnet-return - %d\n", timestamp, tid, (int)arg1);
}

fbt::if_detach:entry
{
	printf("PS %d %d ifdetach-entry %s -\n", timestamp, tid,
	    stringof(((struct ifnet *)arg0)->if_xname));
}

fbt::if_detach:return
{
	printf("PS %d %d ifdetach-return - -\n", timestamp, tid);
}

fbt::psref_target_destroy:entry
{
	printf("PS %d %d psref-entry - -\n", timestamp, tid);
}

fbt::psref_target_destroy:return
{
	printf("PS %d %d psref-return - -\n", timestamp, tid);
}

fbt::localcount_drain:entry
{
	printf("PS %d %d lcdrain-entry - -\n", timestamp, tid);
}

fbt::localcount_drain:return
{
	printf("PS %d %d lcdrain-return - -\n", timestamp, tid);
}

fbt::device_lookup_acquire:entry
{
	self->acq_cd = arg0;
	self->acq_unit = (int)arg1;
}

/* arg1 is the device_t, NULL when the device is detaching or gone. */
fbt::device_lookup_acquire:return
/self->acq_cd != 0/
{
	printf("PS %d %d acquire %s %s%d\n", timestamp, tid,
	    arg1 != 0 ? stringof(((struct device *)arg1)->dv_xname) : "-",
	    stringof(((struct cfdriver *)self->acq_cd)->cd_name), self->acq_unit);
	self->acq_cd = 0;
}

fbt::device_release:entry
{
	printf("PS %d %d release %s -\n", timestamp, tid,
	    stringof(((struct device *)arg0)->dv_xname));
}

fbt::device_release:return
{
	printf("PS %d %d release-return - -\n", timestamp, tid);
}

/* usbdi SDT probes (sys/dev/usb/usbdi.c, usb_sdt.h); DTrace spells the
 * source's "abort__start" as "abort-start". */
usb:device:pipe:abort-start
{
	printf("PS %d %d pipe-abort-start - -\n", timestamp, tid);
}

usb:device:pipe:abort-done
{
	printf("PS %d %d pipe-abort-done - -\n", timestamp, tid);
}

usb:device:pipe:close,
usb:device:xfer:preabort,
usb:device:xfer:abort,
usb:device:xfer:timeout
{
	printf("PS %d %d usbdi %s:%s -\n", timestamp, tid, probefunc, probename);
}
