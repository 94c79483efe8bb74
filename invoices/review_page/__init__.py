"""The clerk's review page in the admin: the original beside the extracted fields as a form."""
