/*
 * plugstorm.d: detach phases, reference drains and ifnet references on a
 * NetBSD guest, for plugstorm-agent's NetBSD backend (images/agent/netbsd/).
 *
 * The agent does not run this file as it is. It is cut into groups, each
 * starting at a comment line that holds only "@", a space and the group's
 * name; everything before the first group (options, BEGIN) is always
 * kept. The agent lists the probes of every group with `dtrace -l`, keeps
 * only the groups whose probes all exist,
 * reports the others (console and a telemetry Log, and Hello.unavailable),
 * and claims in its Hello only the capabilities the kept groups give
 * (netbsd/nb_probes.c). So no -Z: a kept probe that matches nothing is an
 * error, not a silent hole.
 *
 * Every output line is parsed by ps_nb_parse_dline (netbsd/nb_events.c):
 *     PS <timestamp ns> <tid> <event> <arg1> <arg2>
 * single spaces, "-" for an empty argument. Return probes print "-" for the
 * name: the agent pairs them with the entry on the same thread, and copes
 * with an entry whose return never comes (fbt makes no return probe for a
 * function that ends in a tail call).
 * Needs kernel CTF (MKCTF, default on amd64) for the member accesses.
 * The NetBSD facts behind each group: images/netbsd/README.md.
 */
#pragma D option quiet
#pragma D option switchrate=100hz
#pragma D option bufsize=4m
#pragma D option dynvarsize=4m

dtrace:::BEGIN
{
	printf("PSREADY\n");
}

/*@ detach */
fbt::config_detach:entry
{
	printf("PS %d %d detach-entry %s %d\n", timestamp, tid,
	    stringof(((struct device *)arg0)->dv_xname), (int)arg1);
}

/*@ detach-return */
/* Absent where config_detach ends in a tail call (later -current:
 * config_detach_release); then drvctl's device-detach ends the detach. */
fbt::config_detach:return
{
	printf("PS %d %d detach-return - %d\n", timestamp, tid, (int)arg1);
}

/*@ commit */
fbt::config_detach_commit:entry
{
	printf("PS %d %d commit %s -\n", timestamp, tid,
	    stringof(((struct device *)arg0)->dv_xname));
}

/*@ devfree */
/* static in subr_autoconf.c: present only where the compiler kept it. */
fbt::config_devfree:entry
{
	printf("PS %d %d devfree %s -\n", timestamp, tid,
	    stringof(((struct device *)arg0)->dv_xname));
}

/*@ deactivate */
fbt::config_deactivate:entry
{
	printf("PS %d %d deactivate-entry %s -\n", timestamp, tid,
	    stringof(((struct device *)arg0)->dv_xname));
}

fbt::config_deactivate:return
{
	printf("PS %d %d deactivate-return - %d\n", timestamp, tid, (int)arg1);
}

/*@ port */
fbt::usb_disconnect_port:entry
{
	printf("PS %d %d port-entry %d -\n", timestamp, tid,
	    ((struct usbd_port *)arg0)->up_portno);
}

fbt::usb_disconnect_port:return
{
	printf("PS %d %d port-return - %d\n", timestamp, tid, (int)arg1);
}

/*@ usbnet */
fbt::usbnet_detach:entry
{
	printf("PS %d %d usbnet-entry %s -\n", timestamp, tid,
	    stringof(((struct device *)arg0)->dv_xname));
}

fbt::usbnet_detach:return
{
	printf("PS %d %d usbnet-return - %d\n", timestamp, tid, (int)arg1);
}

/*@ ether-ifdetach */
fbt::ether_ifdetach:entry
{
	printf("PS %d %d ether-ifdetach %s -\n", timestamp, tid,
	    stringof(((struct ifnet *)arg0)->if_xname));
}

/*@ task-wait */
fbt::usb_rem_task_wait:entry
{
	printf("PS %d %d task-wait - -\n", timestamp, tid);
}

/*@ ifdetach */
fbt::if_detach:entry
{
	self->ifp = arg0;
	printf("PS %d %d ifdetach-entry %s -\n", timestamp, tid,
	    stringof(((struct ifnet *)arg0)->if_xname));
}

fbt::if_detach:return
{
	self->ifp = 0;
	printf("PS %d %d ifdetach-return - -\n", timestamp, tid);
}

/*@ ifnet-drain */
/* The ifnet's own target (if_detach's argument), an interface address's
 * (ifa_psref_class: ifa_remove while if_detach purges addresses), or other. */
fbt::psref_target_destroy:entry
{
	printf("PS %d %d psref-entry %s -\n", timestamp, tid,
	    self->ifp != 0 && arg0 == (uintptr_t)&((struct ifnet *)self->ifp)->if_psref ? "ifnet" :
	    arg1 == (uintptr_t)`ifa_psref_class ? "ifaddr" : "other");
}

fbt::psref_target_destroy:return
{
	printf("PS %d %d psref-return - -\n", timestamp, tid);
}

/*@ device-drain */
fbt::localcount_drain:entry
{
	printf("PS %d %d lcdrain-entry - -\n", timestamp, tid);
}

fbt::localcount_drain:return
{
	printf("PS %d %d lcdrain-return - -\n", timestamp, tid);
}

/*@ ifnet-refs */
/* ifnet psrefs (sys/net/if.c): if_get and if_get_byindex acquire one on the
 * interface they return, if_put releases it; the struct psref's address
 * pairs them. */
fbt::if_get:entry,
fbt::if_get_byindex:entry
{
	self->ifg_psref = arg1;
}

fbt::if_get:return,
fbt::if_get_byindex:return
/self->ifg_psref != 0 && arg1 != 0/
{
	printf("PS %d %d ifref-acquire %s %p\n", timestamp, tid,
	    stringof(((struct ifnet *)arg1)->if_xname), self->ifg_psref);
}

fbt::if_get:return,
fbt::if_get_byindex:return
{
	self->ifg_psref = 0;
}

fbt::if_put:entry
/arg0 != 0/
{
	printf("PS %d %d ifref-release %s %p\n", timestamp, tid,
	    stringof(((struct ifnet *)arg0)->if_xname), arg1);
}

/*@ device-refs */
/* Device-node opens (cdev_open): USB NICs have no device node, so this
 * sees their references only if something opens one by unit. */
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

/*@ usbdi */
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
