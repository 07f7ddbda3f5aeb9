-- One database per kefu service (each service owns its tables).
CREATE DATABASE kefu_staff;
CREATE DATABASE kefu_customers;
CREATE DATABASE kefu_tickets;
CREATE DATABASE kefu_complaints;
CREATE DATABASE kefu_training;
CREATE DATABASE kefu_performance;
CREATE DATABASE kefu_gateway;
