module keda-conformance/fake-sources/tests/clients/rabbitmq/amqp091

go 1.20

require github.com/rabbitmq/amqp091-go v1.15.0
