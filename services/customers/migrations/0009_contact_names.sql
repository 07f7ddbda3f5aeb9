-- Customers found by a contact's name (or its beginning): 客户360's search.
CREATE INDEX contacts_name ON contacts (name);
