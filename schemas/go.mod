module github.com/sluice-sms/sluice/schemas

go 1.26.0
