"""core.saves.audited_save: a unique value taken by a concurrent save between the model's
check and the write is a Conflict with a message, not a server error, and leaves no audit entry."""

import pytest

from core.actors import Actor
from core.errors import Conflict
from core.models import AuditEntry
from core.saves import audited_save
from invoices.models import Vendor
from invoices.services import VENDOR_FIELDS

pytestmark = [pytest.mark.services, pytest.mark.django_db]


def test_a_unique_value_taken_meanwhile_is_a_conflict_and_nothing_is_audited():
    def another_clerk_saves_first(_vendor: Vendor) -> None:
        # Runs after full_clean found the VAT id free: the race window, reproduced.
        Vendor.objects.create(name="Saved meanwhile", vat_id="DE136695976")

    with pytest.raises(Conflict, match="saved with the same values meanwhile"):
        audited_save(
            Vendor(),
            actor=Actor.system(),
            action="vendor.create",
            fields={"name": "Mine", "vat_id": "DE136695976"},
            allowed=VENDOR_FIELDS,
            prepare=another_clerk_saves_first,
        )
    assert list(Vendor.objects.values_list("name", flat=True)) == ["Saved meanwhile"]
    assert not AuditEntry.objects.filter(action="vendor.create").exists()
