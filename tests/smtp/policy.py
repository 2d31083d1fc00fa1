"""The SMTP server the e-mail tests send to: aiosmtpd keeping each message in a Maildir, with two
behaviours of real mail servers chosen by the recipient's local part: `refuse-*` gets a permanent
550 (no such mailbox) and `greylist-*` a temporary 451 the first time it is seen.

    python -m aiosmtpd -n -l 127.0.0.1:PORT -c policy.Policy MAILDIR    (with this folder on PYTHONPATH)
"""
from aiosmtpd.handlers import Mailbox


class Policy(Mailbox):
    def __init__(self, mail_dir):
        super().__init__(mail_dir)
        self.greylisted = set()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0].lower()
        if local.startswith("refuse-"):
            return "550 5.1.1 No such mailbox here"
        if local.startswith("greylist-") and address not in self.greylisted:
            self.greylisted.add(address)
            return "451 4.7.1 Greylisted, please try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"
